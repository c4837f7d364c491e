"""Planning, storing and executing runs (contender x seed x fold)."""

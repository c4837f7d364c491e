"""What is measured on a trained model and its predictions, below the tasks that use it: metric kernels
vectorised over resampling weights (``weighted``, ``multiclass``), scores of saved predictions
(``metrics``), inference speed (``speed``), Grad-CAM (``gradcam``) and feature maps (``features``). Each
module is imported where it is used; this package imports nothing itself."""

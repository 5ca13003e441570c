"""Image quality: metrics (PSNR/SSIM by the literature's conventions) and scoring of models on image pairs. ROS-free."""

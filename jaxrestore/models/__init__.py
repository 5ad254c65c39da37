"""Pure linen modules: the generator, the discriminator, the quality predictor, and the
VGG16/AlexNet networks of the perceptual loss and LPIPS."""

"""Parts several methods share (no method lives here): GAN pieces and taps on the restorer's features."""

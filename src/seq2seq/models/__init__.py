"""Models: encoder, attention, step kernels, decoders, the encoder-decoder, language model, classifier, speech
encoder, ensembles, and the losses each is trained on."""

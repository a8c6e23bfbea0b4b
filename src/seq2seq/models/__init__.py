"""Models: the registry of model kinds, encoder, attention, step kernels, RNN decoders, the encoder-decoder,
language model, Transformer, classifier, speech encoder, ensembles, and the losses each is trained on."""

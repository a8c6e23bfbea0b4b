"""Tasks: translation (summarization and chat included), language modelling, classification and speech
recognition, each with its facade (Translator, TextGenerator, TextClassifier, SpeechTranscriber)."""

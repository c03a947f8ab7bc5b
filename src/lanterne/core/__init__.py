"""What every other package stands on: the data types that flow through the pipeline, the error
types that become one-line messages, the model and data assets checked by sha256, and the PDF
fonts. Imports nothing else from Lanterne."""

"""DocsFunction (handler `docs.app.lambda_handler`, code root `functions/`).

A regular package, so no same-named package on the layer can shadow it.
"""

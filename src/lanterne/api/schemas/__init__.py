"""The console API's request, query and response models, one module per area (the same stem as
its routes in `lanterne.api.routes`): they are what `/openapi.json` documents and what the fuzz
tests check every answer against."""

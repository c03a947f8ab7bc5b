"""The observatory: incident and open data on maps and charts, by area and period, with a bias
audit beside every ranking.

Aggregates only. Ingest keeps the time, an H3 cell (never finer than resolution 10, about 66 m) or
an area code, a category, the reporting channel and a count: nothing about a person, no free
text, no exact point. Only the `analyst` role may read rows; every other role sees counts with
small cells suppressed. No table here refers to the video store (OB-01): the camera counts that
reach the observatory are copied in as aggregates.
"""

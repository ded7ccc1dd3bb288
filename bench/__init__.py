"""`make bench`: cold start, AWS round trips, engine overhead, load and memory, as one table.

Plain scripts, never part of `make test`: each `python -m bench.<name>` prints its own rows;
`python -m bench` runs them all. Figures are ratios or counts against a baseline measured in
the same run (these machines are noisy); absolute times are printed beside them.
"""

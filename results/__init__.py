"""Reading results: leaderboards, truth tables, analysis and reports.

Imports neither torch nor Ray (a test guards this), so the commands that only read results start in
a fraction of a second and run on a laptop with no cluster.
"""

"""The leaderboard website, rendered from the results database (see the leaderboard issue)."""

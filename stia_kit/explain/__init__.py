"""Looking inside the models (issue 11): attention recording, attributions, localisation, views."""

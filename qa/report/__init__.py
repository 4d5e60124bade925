"""Reports: run summaries from Robot's output.xml and the call records."""

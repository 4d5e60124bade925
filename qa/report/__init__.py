"""Reports: run summaries from Robot's output.xml and the call records (``summary``), a
capture's findings as JSON and tables (``pcap``), a call's ladder diagram (``ladder``)."""

"""Robot-user evaluation (the field's protocol), dataset loaders, reports, the GrabCut
baseline and the latency benchmark."""

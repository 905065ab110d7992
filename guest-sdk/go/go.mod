module graphmig

go 1.25

module snapback.local/test-cluster/sandbox

go 1.26

module github.com/tokengate/passthrough

go 1.22

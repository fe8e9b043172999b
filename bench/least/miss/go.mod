module github.com/tokengate/leastmiss

go 1.22

module github.com/tokengate/leastfull

go 1.22

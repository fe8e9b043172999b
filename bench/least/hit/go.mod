module github.com/tokengate/leasthit

go 1.22

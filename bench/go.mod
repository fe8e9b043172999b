module github.com/tokengate/oauthintrospection/bench

go 1.22

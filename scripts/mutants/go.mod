module github.com/tokengate/oauthintrospection/scripts/mutants

go 1.26

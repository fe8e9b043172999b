module github.com/tokengate/oauthintrospection

go 1.22

require (
	github.com/mitchellh/mapstructure v1.5.1-0.20231216201459-8508981c8b6c // indirect
	github.com/stretchr/testify v1.11.1 // indirect
	github.com/traefik/yaegi v0.16.1 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)

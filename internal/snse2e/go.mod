module github.com/flapguard/flapguard/internal/snse2e

go 1.26.0

require (
	github.com/Admiral-Piett/goaws v0.4.5
	github.com/flapguard/flapguard v0.0.0-00010101000000-000000000000
	github.com/sirupsen/logrus v1.9.0
)

require (
	github.com/cenkalti/backoff/v4 v4.3.0 // indirect
	github.com/gorilla/mux v1.8.0 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	golang.org/x/sys v0.50.0 // indirect
)

replace github.com/flapguard/flapguard => ../..

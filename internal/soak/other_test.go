//go:build !linux

package soak

import "testing"

// The lab is Linux-only: network namespaces, nftables, a TUN device and
// private PostgreSQL/MariaDB servers, all driven as root. Elsewhere this
// package's tests are not built; this one says why.
func TestLinuxOnly(t *testing.T) {
	t.Skip("the lab needs Linux (network namespaces, nftables, TUN) and root; see CONTRIBUTING.md")
}

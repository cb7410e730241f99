// Command flapdemo shows a database/sql pool and a flapguard pool side by
// side through a scripted VPN flap. (Work in progress.)
package main

import (
	"fmt"

	_ "github.com/dolthub/go-mysql-server/server"
	_ "github.com/flapguard/flapguard/internal/faultproxy"
	_ "github.com/go-sql-driver/mysql"
	_ "gonum.org/v1/plot"
)

func main() { fmt.Println("flapdemo: work in progress") }

package pool

import (
	"database/sql"
	"database/sql/driver"
	"reflect"
	"sort"
)

// adapterFor finds the adapter registered for the driver behind a
// connector given to OpenDB (stdlib.GetConnector, mysql.NewConnector,
// mssql.NewConnectorConfig, or a user's own over them), by the type of
// its driver.Driver, and returns what of it works without the pool's
// sockets: how to read the driver's errors (Classifier), when to believe
// its "nothing was sent" (ClosedAtStart: pgx's SafeToRetry after a send),
// and orphan reaping where the session id needs no round trip
// (SessionOf). SessionQuery, WatchSocket and SocketOf need the pool's
// dialer or cost a round trip plain would not make, and are left out; so
// is Warm, which relies on the tracer the adapter's own connector sets.
// A driver without an adapter gives the zero Driver: generic rules only.
func adapterFor(c driver.Connector) Driver {
	dt := driverType(c)
	if dt == nil {
		return Driver{}
	}
	driversMu.RLock()
	names := make([]string, 0, len(drivers))
	for name := range drivers {
		names = append(names, name)
	}
	driversMu.RUnlock()
	sort.Strings(names)
	for _, name := range names {
		if !isRegistered(name) || registeredType(name) != dt {
			continue
		}
		d, _ := lookupDriver(name)
		return Driver{
			Classifier:          d.Classifier,
			ClosedAtStart:       d.ClosedAtStart,
			SessionOf:           d.SessionOf,
			SessionCheck:        d.SessionCheck,
			KillSession:         d.KillSession,
			ReapNeedsPermission: d.ReapNeedsPermission,
		}
	}
	return Driver{}
}

// driverType is the dynamic type of c's driver.Driver; nil if c has none
// (or its Driver method panics: a user's connector must not take OpenDB
// down).
func driverType(c driver.Connector) (t reflect.Type) {
	if c == nil {
		return nil
	}
	defer func() {
		if recover() != nil {
			t = nil
		}
	}()
	if d := c.Driver(); d != nil {
		return reflect.TypeOf(d)
	}
	return nil
}

// registeredType is the type of the driver.Driver database/sql has under
// name. sql.Open does not connect.
func registeredType(name string) reflect.Type {
	db, err := sql.Open(name, "")
	if err != nil {
		return nil
	}
	defer db.Close()
	return reflect.TypeOf(db.Driver())
}

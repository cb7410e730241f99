package compat

import (
	"database/sql"
	"testing"

	"gorm.io/gorm"
)

type gormTxResult struct {
	CommitErr        string
	AfterCommit      []string
	InsideCount      int64
	OutsideCount     int64
	RollbackErr      string
	AfterRollback    []string
	DupInTxErr       string
	AfterDupInTx     string
	DupTxErr         string
	AfterDup         []string
	NestedErr        string
	NestedInnerErr   string
	AfterNested      []string
	ManualCommitErr  string
	AfterManual      []string
	SavePointNames   []string
	ReadOnlyErr      string
	ReadOnlyIsoLevel string
	Panicked         bool
	AfterPanic       []string
}

// TestGormTransaction: GORM transactions commit and roll back the same
// through flapguard: Transaction with nil, with an error, with a server
// error inside (and what the transaction allows after it), nested
// transactions (savepoints), manual Begin/Rollback/Commit, SavePoint and
// RollbackTo, a read-only serializable transaction (TxOptions reach the
// driver), and a panic in the body. Uncommitted rows are invisible outside.
func TestGormTransaction(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv *server) {
		compareSides(t, openSides(t, srv), func(t *testing.T, s *side) (r gormTxResult) {
			gdb := s.gorm(t)
			migrate(t, s, gdb)
			names := func() []string {
				t.Helper()
				var ns []string
				must(t, "names", gdb.Model(&User{}).Order("name").Pluck("name", &ns).Error)
				return ns
			}

			r.CommitErr = errKind(gdb.Transaction(func(tx *gorm.DB) error {
				us := []User{{Name: "ann", Email: "ann@example.com"}, {Name: "bob", Email: "bob@example.com"}}
				if err := tx.Create(&us).Error; err != nil {
					return err
				}
				return tx.Model(&User{}).Where("name = ?", "bob").Update("age", 3).Error
			}))
			r.AfterCommit = names()
			if len(r.AfterCommit) == 0 {
				t.Fatal("nothing committed")
			}

			r.RollbackErr = wantErr(t, "rolled back", gdb.Transaction(func(tx *gorm.DB) error {
				must(t, "create in tx", tx.Create(&User{Name: "tmp", Email: "tmp@example.com"}).Error)
				must(t, "count inside", tx.Model(&User{}).Count(&r.InsideCount).Error)
				must(t, "count outside", gdb.Model(&User{}).Count(&r.OutsideCount).Error)
				return errRollback
			}))
			r.AfterRollback = names()

			r.DupTxErr = wantErr(t, "duplicate in tx", gdb.Transaction(func(tx *gorm.DB) error {
				must(t, "create", tx.Create(&User{Name: "eve", Email: "eve@example.com"}).Error)
				err := tx.Create(&User{Name: "ann again", Email: "ann@example.com"}).Error
				r.DupInTxErr = wantErr(t, "duplicate", err)
				// PostgreSQL aborts the transaction; MySQL does not.
				r.AfterDupInTx = errKind(tx.Model(&User{}).Count(new(int64)).Error)
				return err
			}))
			r.AfterDup = names()

			r.NestedErr = errKind(gdb.Transaction(func(tx *gorm.DB) error {
				if err := tx.Create(&User{Name: "outer", Email: "outer@example.com"}).Error; err != nil {
					return err
				}
				r.NestedInnerErr = wantErr(t, "inner rolled back", tx.Transaction(func(tx2 *gorm.DB) error {
					must(t, "inner create", tx2.Create(&User{Name: "inner1", Email: "inner1@example.com"}).Error)
					return errRollback
				}))
				return tx.Transaction(func(tx2 *gorm.DB) error {
					return tx2.Create(&User{Name: "inner2", Email: "inner2@example.com"}).Error
				})
			}))
			r.AfterNested = names()

			tx := gdb.Begin()
			must(t, "begin", tx.Error)
			must(t, "manual create", tx.Create(&User{Name: "manual", Email: "manual@example.com"}).Error)
			must(t, "manual rollback", tx.Rollback().Error)
			r.ManualCommitErr = wantErr(t, "commit after rollback", tx.Commit().Error)
			r.AfterManual = names()

			tx = gdb.Begin()
			must(t, "begin", tx.Error)
			must(t, "sp create 1", tx.Create(&User{Name: "sp1", Email: "sp1@example.com"}).Error)
			must(t, "savepoint", tx.SavePoint("sp").Error)
			must(t, "sp create 2", tx.Create(&User{Name: "sp2", Email: "sp2@example.com"}).Error)
			must(t, "rollback to", tx.RollbackTo("sp").Error)
			must(t, "commit", tx.Commit().Error)
			r.SavePointNames = names()

			tx = gdb.Begin(&sql.TxOptions{Isolation: sql.LevelSerializable, ReadOnly: true})
			must(t, "begin read-only", tx.Error)
			isoQuery := map[string]string{"postgres": "SHOW transaction_isolation", "mysql": "SELECT @@tx_isolation"}[s.srv.name]
			must(t, "isolation", tx.Raw(isoQuery).Scan(&r.ReadOnlyIsoLevel).Error)
			r.ReadOnlyErr = wantErr(t, "write in read-only tx", tx.Create(&User{Name: "ro", Email: "ro@example.com"}).Error)
			must(t, "rollback read-only", tx.Rollback().Error)

			func() {
				defer func() { r.Panicked = recover() != nil }()
				gdb.Transaction(func(tx *gorm.DB) error {
					must(t, "create before panic", tx.Create(&User{Name: "panic", Email: "panic@example.com"}).Error)
					panic("compat: panic in transaction")
				})
			}()
			r.AfterPanic = names()
			return r
		})
	})
}

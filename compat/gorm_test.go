package compat

import (
	"testing"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"
	"gorm.io/gorm/schema"
)

// User and Order are the GORM models: a has-many association, a unique
// index, and the column types an application commonly has (time, NULL,
// bool, float), so that values pass through the wrapper's argument
// conversion (CheckNamedValue) and come back.
type User struct {
	ID      uint64
	Name    string `gorm:"size:64;not null"`
	Email   string `gorm:"size:128;uniqueIndex"`
	Age     int
	Nick    *string
	Born    time.Time
	Active  bool
	Balance float64
	Orders  []Order
}

type Order struct {
	ID     uint64
	UserID uint64
	Item   string `gorm:"size:64;not null"`
	Amount int
}

func gormNaming(prefix string) schema.Namer {
	return schema.NamingStrategy{TablePrefix: prefix}
}

// gormLogger sends GORM's warnings and errors to the test log.
func gormLogger(t *testing.T) logger.Interface {
	return logger.New(tlog{t}, logger.Config{
		SlowThreshold: 5 * time.Second,
		LogLevel:      logger.Warn,
		Colorful:      false,
	})
}

type tlog struct{ t *testing.T }

func (l tlog) Printf(format string, args ...any) { l.t.Logf(format, args...) }

// migrate creates the models' tables on the side and drops them at the end.
func migrate(t *testing.T, s *side, gdb *gorm.DB) {
	t.Helper()
	s.dropLater(t, s.table("users"), s.table("orders"))
	must(t, "AutoMigrate", gdb.AutoMigrate(&User{}, &Order{}))
}

// seedUsers are the rows the GORM scenarios start from.
func seedUsers() []User {
	nick := "bee"
	born := time.Date(1990, 3, 4, 5, 6, 7, 0, time.UTC)
	return []User{
		{Name: "ann", Email: "ann@example.com", Age: 30, Born: born, Active: true, Balance: 10.5},
		{Name: "bob", Email: "bob@example.com", Age: 25, Nick: &nick, Born: born.AddDate(5, 0, 0), Balance: -3.25},
		{Name: "cid", Email: "cid@example.com", Age: 41, Born: born.AddDate(-7, 1, 1), Active: true},
	}
}

// norm makes users comparable across sides: time in UTC, associations
// reduced to what was loaded.
func norm(us ...User) []User {
	out := make([]User, len(us))
	for i, u := range us {
		u.Born = u.Born.UTC()
		out[i] = u
	}
	return out
}

type activeCount struct {
	Active bool
	N      int64
}

type gormCRUDResult struct {
	IDs             []uint64
	CreateRows      int64
	DupErr          string
	First           []User
	NotFoundErr     string
	TakeErr         string
	UpdateRows      int64
	UpdateNoneRows  int64
	UpdatesRows     int64
	SaveRows        int64
	UpsertRows      int64
	DeleteRows      int64
	DeleteAgainRows int64
	Count           int64
	SumAge          int64
	Names           []string
	Grouped         []activeCount
	BadColumnErr    string
	All             []User
}

// TestGormCRUD: GORM's create (batch, RETURNING or LastInsertId), unique
// violation (translated to gorm.ErrDuplicatedKey), First/Take/not found,
// Update/Updates/Save, upsert, Delete, Count, Pluck, aggregates, and an
// unknown column, with the same rows, affected counts and errors through
// flapguard as through plain database/sql.
func TestGormCRUD(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv *server) {
		compareSides(t, openSides(t, srv), func(t *testing.T, s *side) (r gormCRUDResult) {
			gdb := s.gorm(t)
			migrate(t, s, gdb)

			users := seedUsers()
			res := gdb.Create(&users)
			must(t, "create", res.Error)
			r.CreateRows = res.RowsAffected
			for _, u := range users {
				r.IDs = append(r.IDs, u.ID)
			}
			r.DupErr = wantErr(t, "duplicate email", gdb.Create(&User{Name: "dup", Email: "ann@example.com"}).Error)

			var u User
			must(t, "first", gdb.First(&u, "email = ?", "bob@example.com").Error)
			r.First = norm(u)
			r.NotFoundErr = wantErr(t, "first missing", gdb.First(&User{}, "email = ?", "nobody@example.com").Error)
			r.TakeErr = wantErr(t, "take missing", gdb.Where("age > ?", 1000).Take(&User{}).Error)

			res = gdb.Model(&User{}).Where("age > ?", 26).Update("age", gorm.Expr("age + ?", 1))
			must(t, "update", res.Error)
			r.UpdateRows = res.RowsAffected
			res = gdb.Model(&User{}).Where("age > ?", 1000).Update("age", 1)
			must(t, "update none", res.Error)
			r.UpdateNoneRows = res.RowsAffected
			res = gdb.Model(&User{ID: users[1].ID}).Updates(User{Name: "bobby", Active: true})
			must(t, "updates", res.Error)
			r.UpdatesRows = res.RowsAffected
			users[2].Balance = 99.75
			res = gdb.Save(&users[2])
			must(t, "save", res.Error)
			r.SaveRows = res.RowsAffected

			res = gdb.Clauses(clause.OnConflict{
				Columns:   []clause.Column{{Name: "email"}},
				DoUpdates: clause.AssignmentColumns([]string{"age"}),
			}).Create(&User{Name: "ann2", Email: "ann@example.com", Age: 77, Born: users[0].Born})
			must(t, "upsert", res.Error)
			r.UpsertRows = res.RowsAffected

			res = gdb.Delete(&User{}, users[2].ID)
			must(t, "delete", res.Error)
			r.DeleteRows = res.RowsAffected
			res = gdb.Delete(&User{}, users[2].ID)
			must(t, "delete again", res.Error)
			r.DeleteAgainRows = res.RowsAffected

			must(t, "count", gdb.Model(&User{}).Count(&r.Count).Error)
			must(t, "sum", gdb.Model(&User{}).Select("coalesce(sum(age), 0)").Scan(&r.SumAge).Error)
			must(t, "pluck", gdb.Model(&User{}).Order("name").Pluck("name", &r.Names).Error)
			must(t, "group", gdb.Model(&User{}).Select("active, count(*) AS n").Group("active").Order("active").Scan(&r.Grouped).Error)
			r.BadColumnErr = wantErr(t, "unknown column", gdb.Model(&User{}).Where("no_such_column = ?", 1).Count(new(int64)).Error)

			var all []User
			must(t, "find", gdb.Order("id").Find(&all).Error)
			r.All = norm(all...)
			if len(r.All) == 0 {
				t.Fatal("find returned no rows")
			}
			return r
		})
	})
}

type gormPreparedResult struct {
	IDs      []uint64
	Found    [][]string
	Updated  []int64
	Missing  string
	BadQuery string
	Again    []string
}

// TestGormPrepareStmt: GORM's PrepareStmt mode keeps prepared statements
// per connection across calls (database/sql re-prepares them on other
// connections); reuse, a failing prepare, and use after it work the same.
func TestGormPrepareStmt(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv *server) {
		compareSides(t, openSides(t, srv), func(t *testing.T, s *side) (r gormPreparedResult) {
			gdb := s.gorm(t)
			migrate(t, s, gdb)
			pdb := gdb.Session(&gorm.Session{PrepareStmt: true})
			for _, u := range seedUsers() {
				must(t, "create", pdb.Create(&u).Error)
				r.IDs = append(r.IDs, u.ID)
			}
			for _, minAge := range []int{0, 26, 35, 100} {
				var names []string
				must(t, "find", pdb.Model(&User{}).Where("age >= ?", minAge).Order("id").Pluck("name", &names).Error)
				r.Found = append(r.Found, names)
			}
			for _, id := range r.IDs {
				res := pdb.Model(&User{}).Where("id = ?", id).Update("age", gorm.Expr("age * 2"))
				must(t, "update", res.Error)
				r.Updated = append(r.Updated, res.RowsAffected)
			}
			r.Missing = wantErr(t, "first missing", pdb.First(&User{}, r.IDs[len(r.IDs)-1]+100).Error)
			r.BadQuery = wantErr(t, "bad query", pdb.Raw("SELECT nonsense FROM "+s.table("users")+" WHERE").Scan(new(int)).Error)
			must(t, "after bad query", pdb.Model(&User{}).Order("age").Pluck("name", &r.Again).Error)
			return r
		})
	})
}

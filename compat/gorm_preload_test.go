package compat

import (
	"testing"

	"gorm.io/gorm"
)

type gormPreloadResult struct {
	OrderIDs       [][]uint64
	Preloaded      []User
	Filtered       []User
	Joined         []orderWithUser
	AssocCount     int64
	AfterAppend    []string
	AfterDelete    []string
	AfterReplace   []string
	Unlinked       []string
	DeleteUsedErr  string
	OrderTotals    []userTotal
	EmptyPreloaded []User
}

type orderWithUser struct {
	Item string
	Name string
}

type userTotal struct {
	Name  string
	Total int64
}

// TestGormPreload: a has-many association saved with its parent, Preload
// (all, filtered, ordered), a join, Association mode (Count, Append,
// Delete, Replace), the foreign key refusing to delete a referenced row,
// and a Preload that finds nothing.
func TestGormPreload(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv *server) {
		compareSides(t, openSides(t, srv), func(t *testing.T, s *side) (r gormPreloadResult) {
			gdb := s.gorm(t)
			migrate(t, s, gdb)

			users := seedUsers()
			users[0].Orders = []Order{{Item: "apple", Amount: 3}, {Item: "pear", Amount: 12}}
			users[1].Orders = []Order{{Item: "plum", Amount: 40}}
			must(t, "create with orders", gdb.Create(&users).Error)
			for _, u := range users {
				var ids []uint64
				for _, o := range u.Orders {
					ids = append(ids, o.ID)
				}
				r.OrderIDs = append(r.OrderIDs, ids)
			}

			byID := func(db *gorm.DB) *gorm.DB { return db.Order("id") }
			var all []User
			must(t, "preload", gdb.Preload("Orders", byID).Order("id").Find(&all).Error)
			r.Preloaded = norm(all...)
			if len(r.Preloaded) == 0 || len(r.Preloaded[0].Orders) == 0 {
				t.Fatalf("preload loaded nothing: %+v", r.Preloaded)
			}

			var big []User
			must(t, "preload filtered", gdb.Preload("Orders", "amount > ?", 10, byID).Where("age < ?", 40).Order("id").Find(&big).Error)
			r.Filtered = norm(big...)

			must(t, "join", gdb.Model(&Order{}).
				Select(s.table("orders")+".item, "+s.table("users")+".name").
				Joins("JOIN "+s.table("users")+" ON "+s.table("users")+".id = "+s.table("orders")+".user_id").
				Order(s.table("orders")+".id").Scan(&r.Joined).Error)

			ann := users[0]
			orders := func() *gorm.Association { return gdb.Model(&ann).Association("Orders") }
			r.AssocCount = orders().Count()
			must(t, "append", orders().Append(&Order{Item: "fig", Amount: 7}))
			r.AfterAppend = orderItems(t, gdb, ann.ID)
			must(t, "assoc delete", orders().Delete(&Order{ID: r.OrderIDs[0][0]}))
			r.AfterDelete = orderItems(t, gdb, ann.ID)
			must(t, "replace", gdb.Model(&users[1]).Association("Orders").Replace([]Order{{Item: "kiwi", Amount: 1}}))
			r.AfterReplace = orderItems(t, gdb, users[1].ID)
			// Association.Delete and Replace unlink: user_id becomes NULL.
			must(t, "unlinked", gdb.Model(&Order{}).Where("user_id IS NULL").Order("id").Pluck("item", &r.Unlinked).Error)

			r.DeleteUsedErr = wantErr(t, "delete referenced user", gdb.Delete(&User{}, ann.ID).Error)
			must(t, "totals", gdb.Model(&User{}).
				Select(s.table("users")+".name, coalesce(sum("+s.table("orders")+".amount), 0) AS total").
				Joins("LEFT JOIN "+s.table("orders")+" ON "+s.table("orders")+".user_id = "+s.table("users")+".id").
				Group(s.table("users")+".name").Order(s.table("users")+".name").Scan(&r.OrderTotals).Error)

			var none []User
			must(t, "preload none", gdb.Preload("Orders").Where("age > ?", 1000).Find(&none).Error)
			r.EmptyPreloaded = norm(none...)
			return r
		})
	})
}

func orderItems(t *testing.T, gdb *gorm.DB, userID uint64) []string {
	t.Helper()
	var items []string
	must(t, "order items", gdb.Model(&Order{}).Where("user_id = ?", userID).Order("id").Pluck("item", &items).Error)
	return items
}

module migration

go 1.25

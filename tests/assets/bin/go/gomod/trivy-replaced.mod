module github.com/org/repo

go 1.17

require github.com/aquasecurity/go-dep-parser v0.0.0-20211110174639-8257534ffed3

require golang.org/x/xerrors v0.0.0-20200804184101-5ec99f83aff1 // indirect

replace github.com/aquasecurity/go-dep-parser => github.com/aquasecurity/go-dep-parser v0.0.0-20220406074731-71021a481237

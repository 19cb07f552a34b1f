// Command replaced prints a random UUID and a parsed language tag.
package main

import (
	"fmt"

	"github.com/google/uuid"
	"golang.org/x/text/language"
)

var version = "dev"

func main() {
	fmt.Println(version, uuid.NewString(), language.MustParse("de-CH"))
}

// Command plain is built in GOPATH mode, so its build info has no module lines.
package main

import "fmt"

func main() {
	fmt.Println("plain")
}

package main

import (
	"fmt"
	"runtime"
	"strings"
	"unicode"
)

func main() {
	fmt.Printf("# unicode.SimpleFold orbits with more than one member, from %s (Unicode %s)\n", runtime.Version(), unicode.Version)
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if r >= 0xD800 && r <= 0xDFFF {
			continue
		}
		orbit := []rune{r}
		min := r
		for x := unicode.SimpleFold(r); x != r; x = unicode.SimpleFold(x) {
			orbit = append(orbit, x)
			if x < min {
				min = x
			}
		}
		if len(orbit) < 2 || min != r {
			continue
		}
		parts := []string{}
		for _, x := range orbit {
			parts = append(parts, fmt.Sprintf("%04X", x))
		}
		fmt.Println(strings.Join(parts, " "))
	}
}

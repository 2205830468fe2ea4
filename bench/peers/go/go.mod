module casty/bench/peers/go

go 1.19

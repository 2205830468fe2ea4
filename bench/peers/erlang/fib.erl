%% fib N (bench/fib.c): one process per call; it gets {compute, N}, and for
%% N >= 2 spawns two children for N-1 and N-2, waits for both {result, V},
%% replies the sum to its parent (the root arrives with it) and ends; a leaf
%% replies N at once. The result is checked against an iterative fib(N).
%% msgs = the number of processes, 2*fib(N+1)-1.
-module(fib).
-export([spec/0, run/1]).

spec() -> {"fib", [{"n", 0, 40}]}.

run([N]) ->
    {Expected, Next} = fib_iter(N, 0, 1),
    L = peer_bench:latch(1),
    Root = spawn(fun() -> call(none, L) end),
    {Secs, Got} = peer_bench:timed(L, fun() -> Root ! {compute, N} end),
    Got =:= Expected orelse peer_bench:die("fib(~b): got ~b, expected ~b", [N, Got, Expected]),
    {2 * Next - 1, Secs}.

fib_iter(0, A, B) -> {A, B};
fib_iter(K, A, B) -> fib_iter(K - 1, B, A + B).

call(Parent, L) ->
    receive
        {compute, N} when N < 2 -> reply(Parent, L, N);
        {compute, N} ->
            Self = self(),
            [spawn(fun() -> call(Self, L) end) ! {compute, N - K} || K <- [1, 2]],
            receive {result, A} -> receive {result, B} -> reply(Parent, L, A + B) end end
    end.

reply(none, L, V) -> peer_bench:arrive(L, V);
reply(Parent, _, V) -> Parent ! {result, V}.

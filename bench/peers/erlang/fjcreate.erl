%% fjcreate N (bench/fjcreate.c): a spawner creates N processes, ?CHUNK per
%% turn (it sends itself next for the following chunk), and sends each one
%% work; each arrives and ends. msgs = N.
-module(fjcreate).
-export([spec/0, run/1]).
-define(CHUNK, 1000).

spec() -> {"fjcreate", [{"n", 1, 1 bsl 32}]}.

run([N]) ->
    L = peer_bench:latch(N),
    Spawner = spawn(fun() -> spawner(N, L) end),
    {Secs, _} = peer_bench:timed(L, fun() -> Spawner ! next end),
    {N, Secs}.

spawner(Left, L) ->
    receive
        next ->
            Chunk = min(?CHUNK, Left),
            [spawn(fun() -> child(L) end) ! work || _ <- lists:seq(1, Chunk)],
            Left > Chunk andalso (self() ! next),
            spawner(Left - Chunk, L)
    end.

child(L) ->
    receive work -> peer_bench:arrive(L, 0) end.

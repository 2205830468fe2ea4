%% pingpong N (bench/pingpong.c): ping sends {ping, self()} to pong, which
%% answers pong; after N round trips ping arrives. msgs = 2N.
-module(pingpong).
-export([spec/0, run/1]).

spec() -> {"pingpong", [{"n", 1, 1 bsl 40}]}.

run([N]) ->
    L = peer_bench:latch(1),
    Pong = spawn(fun ponger/0),
    Ping = spawn(fun() -> pinger(Pong, N, L) end),
    {Secs, _} = peer_bench:timed(L, fun() -> Ping ! start end),
    exit(Pong, kill),
    {2 * N, Secs}.

ponger() ->
    receive {ping, From} -> From ! pong, ponger() end.

pinger(Pong, Left, L) ->
    receive
        start -> Pong ! {ping, self()}, pinger(Pong, Left, L);
        pong when Left =:= 1 -> peer_bench:arrive(L, 0);
        pong -> Pong ! {ping, self()}, pinger(Pong, Left - 1, L)
    end.

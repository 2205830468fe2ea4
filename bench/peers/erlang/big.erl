%% big N W (bench/big.c): W processes each send N pings, one outstanding at a
%% time, each to a random other process (rand's exsp, seeded per process),
%% answering every {ping, From} they get, also after their own N; each
%% arrives at its N-th pong. The peers tuple is sent to every process before
%% the clock starts. msgs = 2*N*W.
-module(big).
-export([spec/0, run/1]).

spec() -> {"big", [{"n", 1, 1 bsl 32}, {"w", 1, 10000000}]}.

run([N, W]) ->
    L = peer_bench:latch(W),
    Pids = [spawn(fun() -> setup(I, N, W, L) end) || I <- lists:seq(1, W)],
    Peers = list_to_tuple(Pids),
    [P ! {peers, Peers} || P <- Pids],
    {Secs, _} = peer_bench:timed(L, fun() -> [P ! start || P <- Pids] end),
    [exit(P, kill) || P <- Pids],
    {2 * N * W, Secs}.

setup(I, N, W, L) ->
    receive {peers, Peers} -> peer(I, Peers, W, N, rand:seed_s(exsp, I), L) end.

peer(I, Peers, W, Left, Rng, L) ->
    receive
        {ping, From} -> From ! pong, peer(I, Peers, W, Left, Rng, L);
        pong when Left =:= 1 -> peer_bench:arrive(L, 0), peer(I, Peers, W, 0, Rng, L);
        pong -> peer(I, Peers, W, Left - 1, send_ping(I, Peers, W, Rng), L);
        start -> peer(I, Peers, W, Left, send_ping(I, Peers, W, Rng), L)
    end.

%% Pings a random other peer (itself when alone); returns the new rand state.
send_ping(I, Peers, 1, Rng) -> element(I, Peers) ! {ping, self()}, Rng;
send_ping(I, Peers, W, Rng) ->
    {R, Rng2} = rand:uniform_s(W - 1, Rng),
    To = case R >= I of true -> R + 1; false -> R end,
    element(To, Peers) ! {ping, self()},
    Rng2.

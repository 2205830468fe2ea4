%% fjthrput N A (bench/fjthrput.c): the main process sends N {work, Seed}
%% to each of A processes, round-robin; each costs Savina's work (the square
%% of a sine, work/1); after its N-th an actor arrives with its checksum.
%% msgs = N*A.
-module(fjthrput).
-export([spec/0, run/1]).

spec() -> {"fjthrput", [{"n", 1, 1 bsl 32}, {"a", 1, 10000000}]}.

run([N, A]) ->
    L = peer_bench:latch(A),
    Actors = [spawn(fun() -> worker(N, 0.0, L) end) || _ <- lists:seq(1, A)],
    {Secs, _} = peer_bench:timed(L, fun() -> send_all(0, N, Actors) end),
    {N * A, Secs}.

send_all(N, N, _) -> ok;
send_all(K, N, Actors) ->
    [Pid ! {work, K} || Pid <- Actors],
    send_all(K + 1, N, Actors).

worker(0, Acc, L) -> peer_bench:arrive(L, trunc(Acc) bor 1);
worker(Left, Acc, L) ->
    receive {work, Seed} -> worker(Left - 1, Acc + work(Seed), L) end.

%% Savina's ForkJoinConfig.performComputation(37.2): sin(theta) squared,
%% theta moved by the seed (bench/fjthrput.c's savina_work).
work(Seed) ->
    S = math:sin(37.2 + (Seed band 1023) / 1024.0),
    S * S.

%% ask N (bench/ask.c with one asking thread): the main process asks an echo
%% process N times, one at a time, as gen_server:call does: a fresh
%% reference, {ask, self(), Ref, V} to the echo, then a receive of
%% {Ref, Reply}. msgs = N asks (each a request and a reply).
-module(ask).
-export([spec/0, run/1]).

spec() -> {"ask", [{"n", 1, 1 bsl 32}]}.

run([N]) ->
    L = peer_bench:latch(1),
    Echo = spawn(fun echo/0),
    {Secs, _} = peer_bench:timed(L, fun() -> asks(Echo, 0, N), peer_bench:arrive(L, N) end),
    exit(Echo, kill),
    {N, Secs}.

echo() ->
    receive {ask, From, Ref, V} -> From ! {Ref, V + 1}, echo() end.

asks(_, N, N) -> ok;
asks(Echo, I, N) ->
    Ref = make_ref(),
    Echo ! {ask, self(), Ref, I},
    receive
        {Ref, R} when R =:= I + 1 -> asks(Echo, I + 1, N);
        {Ref, _} -> peer_bench:die("ask: reply ~b is wrong", [I])
    end.

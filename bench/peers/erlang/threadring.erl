%% threadring N R (bench/threadring.c): a token passed R hops around a ring
%% of N processes, built back to front, the last link set with one set_next
%% message before the clock starts; the process that gets {token, 0}
%% arrives. msgs = R.
-module(threadring).
-export([spec/0, run/1]).

spec() -> {"threadring", [{"n", 1, 10000000}, {"r", 1, 1 bsl 40}]}.

run([N, R]) ->
    L = peer_bench:latch(1),
    Last = spawn(fun() -> member(none, L) end),
    Ring = lists:foldl(fun(_, [Next | _] = Acc) -> [spawn(fun() -> member(Next, L) end) | Acc] end,
                       [Last], lists:seq(2, N)),
    First = hd(Ring),
    Last ! {set_next, First},
    {Secs, _} = peer_bench:timed(L, fun() -> First ! {token, R} end),
    [exit(P, kill) || P <- Ring],
    {R, Secs}.

member(Next, L) ->
    receive
        {token, 0} -> peer_bench:arrive(L, 0), member(Next, L);
        {token, Hops} -> Next ! {token, Hops - 1}, member(Next, L);
        {set_next, Next2} -> member(Next2, L)
    end.

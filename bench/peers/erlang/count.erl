%% count N (bench/count.c): a producer sends N inc messages to a counter in
%% chunks of ?CHUNK, the last of each chunk being {inc, self()} which the
%% counter acks, at most ?WINDOW chunks unacknowledged; then {query,
%% Collector}; the collector arrives with the total, which must be N.
%% msgs = N.
-module(count).
-export([spec/0, run/1]).
-define(CHUNK, 1000).
-define(WINDOW, 4).

spec() -> {"count", [{"n", 1, 1 bsl 40}]}.

run([N]) ->
    L = peer_bench:latch(1),
    Counter = spawn(fun() -> counter(0) end),
    Collector = spawn(fun() -> receive {total, C} -> peer_bench:arrive(L, C) end end),
    Producer = spawn(fun() -> producer(Counter, Collector, N, 0, 0) end),
    {Secs, Got} = peer_bench:timed(L, fun() -> Producer ! start end),
    Got =:= N orelse peer_bench:die("count: counter saw ~b messages, expected ~b", [Got, N]),
    exit(Counter, kill),
    {N, Secs}.

counter(C) ->
    receive
        inc -> counter(C + 1);
        {inc, From} -> From ! ack, counter(C + 1);
        {query, To} -> To ! {total, C}, counter(C)
    end.

producer(Counter, Collector, N, Sent, Pending) ->
    receive
        start ->
            Chunks = min(?WINDOW, (N + ?CHUNK - 1) div ?CHUNK),
            Sent2 = lists:foldl(fun(_, S) -> send_chunk(Counter, S, N) end, Sent,
                                lists:seq(1, Chunks)),
            producer(Counter, Collector, N, Sent2, Pending + Chunks);
        ack when Sent < N ->
            producer(Counter, Collector, N, send_chunk(Counter, Sent, N), Pending);
        ack when Pending =:= 1 ->
            Counter ! {query, Collector};
        ack ->
            producer(Counter, Collector, N, Sent, Pending - 1)
    end.

%% Sends min(?CHUNK, N - Sent) messages, the last asking for an ack.
send_chunk(Counter, Sent, N) ->
    End = min(Sent + ?CHUNK, N),
    send_incs(Counter, End - Sent - 1),
    Counter ! {inc, self()},
    End.

send_incs(_, 0) -> ok;
send_incs(Counter, K) -> Counter ! inc, send_incs(Counter, K - 1).

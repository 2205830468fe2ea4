%% mailbox P M (bench/mailbox.c): P producers send M item messages each to
%% one receiver, in chunks of ?CHUNK whose last item is {item, self()} which
%% the receiver acks, at most ?WINDOW chunks unacknowledged each; the
%% receiver arrives once it has all P*M. msgs = P*M.
-module(mailbox).
-export([spec/0, run/1]).
-define(CHUNK, 1000).
-define(WINDOW, 4).

spec() -> {"mailbox", [{"p", 1, 100000}, {"m", 1, 1 bsl 32}]}.

run([P, M]) ->
    L = peer_bench:latch(1),
    Receiver = spawn(fun() -> receiver(0, P * M, L) end),
    Producers = [spawn(fun() -> producer(Receiver, M, 0) end) || _ <- lists:seq(1, P)],
    {Secs, Got} = peer_bench:timed(L, fun() -> [Pr ! start || Pr <- Producers] end),
    Got =:= P * M orelse
        peer_bench:die("mailbox: receiver saw ~b messages, expected ~b", [Got, P * M]),
    [exit(Pid, kill) || Pid <- [Receiver | Producers]],
    {P * M, Secs}.

receiver(Received, Expected, L) ->
    receive
        Item ->
            case Item of
                {item, From} -> From ! ack;
                item -> ok
            end,
            Expected =:= Received + 1 andalso peer_bench:arrive(L, Expected),
            receiver(Received + 1, Expected, L)
    end.

producer(Receiver, M, Sent) ->
    receive
        start ->
            Chunks = min(?WINDOW, (M + ?CHUNK - 1) div ?CHUNK),
            producer(Receiver, M, lists:foldl(fun(_, S) -> send_chunk(Receiver, S, M) end,
                                              Sent, lists:seq(1, Chunks)));
        ack when Sent < M ->
            producer(Receiver, M, send_chunk(Receiver, Sent, M));
        ack ->
            producer(Receiver, M, Sent)
    end.

send_chunk(Receiver, Sent, M) ->
    End = min(Sent + ?CHUNK, M),
    send_items(Receiver, End - Sent - 1),
    Receiver ! {item, self()},
    End.

send_items(_, 0) -> ok;
send_items(Receiver, K) -> Receiver ! item, send_items(Receiver, K - 1).

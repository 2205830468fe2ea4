%% The harness of casty's Erlang peer benchmarks (bench/peers/erlang): the
%% same eight Savina-style benchmarks as bench/*.c and the ask benchmark,
%% one module each, one process per actor. Started by run.sh as
%%   erl ... -s peer_bench main -extra BENCH PARAMS... [--workers N] [--reps R]
%% (run.sh turns --workers N into +S N:N). One line per repetition:
%%   RESULT lang=erlang bench=<name> params=<k=v,...> workers=<schedulers online>
%%          msgs=<n> secs=<s> msgs_per_sec=<r> maxrss_kb=<VmHWM of the VM>
%% A failure prints "bench: ..." on stderr and halts with status 1; bad
%% arguments halt with 2.
%%
%% A benchmark module exports spec() -> {Name, [{Key, Min, Max}]} and
%% run(Params) -> {Msgs, Secs}. run/1 sets up, then calls timed/2 with a latch made by
%% latch/1; actors call arrive/2. The latch is an atomic countdown whose last
%% arrival messages the waiting (main) process.
-module(peer_bench).
-export([main/0, latch/1, arrive/2, timed/2, die/2, mix/1]).

-define(BENCHES, [pingpong, count, mailbox, threadring, fjthrput, fjcreate, fib, big, ask]).
-define(M64, 16#FFFFFFFFFFFFFFFF).

main() ->
    Code = try run_main(init:get_plain_arguments()) of
               ok -> 0
           catch
               throw:{usage, Msg} -> io:format(standard_error, "~s~n", [Msg]), 2;
               C:E:St -> io:format(standard_error, "bench: ~p:~p~n~p~n", [C, E, St]), 1
           end,
    erlang:halt(Code).

%% Prints "bench: ..." on stderr and halts the VM with status 1; any process.
die(Fmt, Args) ->
    io:format(standard_error, "bench: " ++ Fmt ++ "~n", Args),
    erlang:halt(1).

usage(Fmt, Args) ->
    throw({usage, io_lib:format("peer_bench: " ++ Fmt ++
                                "~nusage: BENCH PARAMS... [--workers N] [--reps R]", Args)}).

run_main([Name | Args]) ->
    Mod = list_to_atom(Name),
    lists:member(Mod, ?BENCHES) orelse usage("unknown benchmark '~s'", [Name]),
    {Name, Spec} = Mod:spec(),
    {Pos, Workers, Reps} = parse(Args, [], 0, 1),
    length(Pos) =:= length(Spec) orelse usage("~s needs ~b parameters", [Name, length(Spec)]),
    Params = [check(V, S) || {V, S} <- lists:zip(Pos, Spec)],
    Sched = erlang:system_info(schedulers_online),
    Workers =:= 0 orelse Workers =:= Sched orelse
        die("--workers ~b but ~b schedulers online (start with +S ~b:~b)",
            [Workers, Sched, Workers, Workers]),
    KV = lists:join(",", [io_lib:format("~s=~b", [K, V]) || {V, {K, _, _}} <- lists:zip(Params, Spec)]),
    lists:foreach(
      fun(_) ->
              {Msgs, Secs} = Mod:run(Params),
              Rate = case Secs > 0 of true -> trunc(Msgs / Secs); false -> 0 end,
              io:format("RESULT lang=erlang bench=~s params=~s workers=~b msgs=~b secs=~.6f "
                        "msgs_per_sec=~b maxrss_kb=~b~n",
                        [Name, KV, Sched, Msgs, Secs, Rate, maxrss_kb()])
      end, lists:seq(1, Reps));
run_main([]) -> usage("no benchmark named", []).

parse([], Pos, W, R) -> {lists:reverse(Pos), W, R};
parse(["--workers", V | T], Pos, _, R) -> parse(T, Pos, num(V, 0, 1024), R);
parse(["--reps", V | T], Pos, W, _) -> parse(T, Pos, W, num(V, 1, 1000000));
parse([[$- | _] = A | _], _, _, _) -> usage("unknown option or missing value at '~s'", [A]);
parse([A | T], Pos, W, R) -> parse(T, [A | Pos], W, R).

check(V, {_, Min, Max}) -> num(V, Min, Max).

num(S, Min, Max) ->
    case string:to_integer(S) of
        {N, []} when N >= Min, N =< Max -> N;
        _ -> usage("bad value '~s' (~b..~b)", [S, Min, Max])
    end.

maxrss_kb() ->
    {ok, Status} = file:read_file("/proc/self/status"),
    {match, [KB]} = re:run(Status, "VmHWM:\\s*(\\d+) kB", [{capture, all_but_first, list}]),
    list_to_integer(KB).

%% ---- the latch and the clock ------------------------------------------------

latch(Arrivals) ->
    A = atomics:new(2, [{signed, false}]),
    atomics:put(A, 1, Arrivals),
    {A, self()}.

%% One arrival carrying V (added to the latch's sum, modulo 2^64).
arrive({A, Waiter}, V) ->
    atomics:add(A, 2, V band ?M64),
    case atomics:sub_get(A, 1, 1) of
        0 -> Waiter ! {latch_open, A}, ok;
        N when N > 1 bsl 62 -> die("latch: more arrivals than expected", []);
        _ -> ok
    end.

%% Starts the clock, runs Kick (the kick-off), waits for the latch; returns
%% {Secs, Sum}. Gives up after BENCH_TIMEOUT_S seconds (default 300).
timed({A, _}, Kick) ->
    Limit = case string:to_integer(os:getenv("BENCH_TIMEOUT_S", "")) of
                {L, []} when L > 0 -> L;
                _ -> 300
            end,
    T0 = erlang:monotonic_time(nanosecond),
    Kick(),
    receive
        {latch_open, A} ->
            T1 = erlang:monotonic_time(nanosecond),
            {(T1 - T0) / 1.0e9, atomics:get(A, 2)}
    after Limit * 1000 ->
            die("timed out waiting for completion: ~b arrivals missing; processes=~b",
                [atomics:get(A, 1), erlang:system_info(process_count)])
    end.

%% The splitmix64 finaliser (bench_mix), modulo 2^64.
mix(X0) ->
    X1 = X0 bxor (X0 bsr 30),
    X2 = (X1 * 16#BF58476D1CE4E5B9) band ?M64,
    X3 = X2 bxor (X2 bsr 27),
    X4 = (X3 * 16#94D049BB133111EB) band ?M64,
    X4 bxor (X4 bsr 31).

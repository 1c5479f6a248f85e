#!/usr/bin/env escript
%%! -noinput +P 5000000
%% bench/peers/erlang_actors.escript - bench_actors' workloads as Erlang processes, the actor model's
%% reference implementation: ping-pong, counting, a ring, spawn rate, memory per idle process, and
%% sequential request/reply (a gen_server:call without the library). Each figure is the median of 5
%% runs, printed as `BENCH <name>.peer.erlang <value> <unit>`; BENCH_QUICK=1 runs a tenth of the
%% sizes. bytes_per_actor is erlang:memory(total) growth per idle process (not RSS).
-mode(compile).

main(_) ->
    Quick = os:getenv("BENCH_QUICK") =:= "1",
    S = fun(Full, Small) -> case Quick of true -> Small; false -> Full end end,
    report("actors.pingpong_rt_per_s", "rt/s", fun() -> pingpong(S(1000000, 100000)) end),
    report("actors.counting_per_s", "msg/s", fun() -> counting(S(10000000, 1000000)) end),
    report("actors.ring_hops_per_s", "hops/s", fun() -> ring(1000, S(10000000, 1000000)) end),
    report("actors.spawn_per_s", "spawns/s", fun() -> spawn_rate(1000000) end),
    report("actors.bytes_per_actor", "B", fun() -> bytes_per(1000000) end),
    report("actors.ask_per_s", "asks/s", fun() -> asks(S(200000, 20000)) end).

report(Name, Unit, F) ->
    Runs = lists:sort([F() || _ <- lists:seq(1, 5)]),
    io:format("BENCH ~s.peer.erlang ~.1f ~s~n", [Name, float(lists:nth(3, Runs)), Unit]),
    io:format("#   ~s.peer.erlang: median of 5 runs, min ~.1f max ~.1f~n",
              [Name, float(hd(Runs)), float(lists:last(Runs))]).

now_ns() -> erlang:monotonic_time(nanosecond).
rate(N, T0) -> N / ((now_ns() - T0) / 1.0e9).

pingpong(N) ->
    Pong = spawn(fun Loop() -> receive {ping, From} -> From ! pong, Loop(); stop -> ok end end),
    T0 = now_ns(),
    ping_loop(Pong, N),
    R = rate(N, T0),
    Pong ! stop,
    R.
ping_loop(_, 0) -> ok;
ping_loop(Pong, N) -> Pong ! {ping, self()}, receive pong -> ok end, ping_loop(Pong, N - 1).

counting(N) ->
    Self = self(),
    Counter = spawn(fun() -> count(N, Self) end),
    T0 = now_ns(),
    spawn(fun() -> send_n(Counter, N) end),
    receive counted -> ok end,
    rate(N, T0).
count(0, Parent) -> Parent ! counted;
count(N, Parent) -> receive _ -> count(N - 1, Parent) end.
send_n(_, 0) -> ok;
send_n(C, N) -> C ! ping, send_n(C, N - 1).

ring(Size, Hops) ->
    Self = self(),
    Pids = [spawn(fun() -> receive {next, Next} -> node(Next, Self) end end)
            || _ <- lists:seq(1, Size)],
    [P ! {next, Next} || {P, Next} <- lists:zip(Pids, tl(Pids) ++ [hd(Pids)])],
    T0 = now_ns(),
    hd(Pids) ! {token, Hops},
    receive done -> ok end,
    R = rate(Hops, T0),
    [P ! stop || P <- Pids],
    R.
node(Next, Parent) ->
    receive
        {token, 1} -> Parent ! done, node(Next, Parent);
        {token, K} -> Next ! {token, K - 1}, node(Next, Parent);
        stop -> ok
    end.

idle() -> receive stop -> ok end.
spawn_n(0, Acc) -> Acc;
spawn_n(N, Acc) -> spawn_n(N - 1, [spawn(fun idle/0) | Acc]).

spawn_rate(N) ->
    T0 = now_ns(),
    Pids = spawn_n(N, []),
    R = rate(N, T0),
    [exit(P, kill) || P <- Pids],
    R.

bytes_per(N) ->
    garbage_collect(),
    M0 = erlang:memory(total),
    Pids = spawn_n(N, []),
    B = (erlang:memory(total) - M0) / N,
    [exit(P, kill) || P <- Pids],
    B.

asks(N) ->
    Echo = spawn(fun Loop() -> receive {ask, From, Ref} -> From ! {Ref, 1}, Loop(); stop -> ok end end),
    T0 = now_ns(),
    ask_loop(Echo, N),
    R = rate(N, T0),
    Echo ! stop,
    R.
ask_loop(_, 0) -> ok;
ask_loop(E, N) ->
    Ref = make_ref(),
    E ! {ask, self(), Ref},
    receive {Ref, _} -> ok end,
    ask_loop(E, N - 1).

// Every user-visible string of the web app, one table per language (issue 9: English and
// Simplified Chinese). t(key, {vars}) in lib.js looks them up; {name} is replaced.
// Sections per page; each page uses its own key prefix (term_, ev_, ph_, adm_, map_).
export const STRINGS = {
  en: {
    // ---- shell and login (app.js, lib.js) ----
    login_title: "Log in", user: "User", password: "Password", login: "Log in",
    logout: "Log out", bad_login: "Wrong user name or password.",
    too_many: "Too many failed logins; try again in {s} s.", unreachable: "The server cannot be reached.",
    session_ended: "Your session has ended; please log in again.",
    http_error: "The server answered {status}.", page_failed: "This page failed: {msg}",
    not_found: "No such page", forbidden: "This page is for administrators.",
    skip: "Skip to content", loading: "Loading…", none: "—",
    role_viewer: "viewer", role_operator: "operator", role_admin: "admin",
    nav_fleet: "Fleet", nav_events: "Events", nav_phase: "Phase", nav_admin: "Admin",
    live: "live", reconnecting: "reconnecting…", offline_app: "offline: showing the last known state",
    ago_s: "{n} s ago", ago_min: "{n} min ago", ago_h: "{n} h ago", ago_d: "{n} d ago",
    todo_page: "This page is not built yet.",

    // ---- fleet page (page-fleet.js) ----
    fleet: "Fleet", online: "online", offline: "offline", with_events: "with open events",
    id: "Terminal", name: "Name", state: "State", last_seen: "Last data", rsrp: "Signal",
    supply: "Supply", temperature: "Temperature", time_q: "Time", buffered: "Buffered",
    analysis: "Analysis", behind: "behind", ok: "ok", events_open: "Open events",
    analysis_delay: "results {s} s after the samples",
    tq_none: "unknown", tq_gps: "GPS locked", tq_net: "network synced", tq_free: "free running",
    sats: "{n} sats", search: "Search", search_hint: "id or name", show: "Show",
    filter_all: "all", filter_online: "online", filter_offline: "offline", filter_events: "with open events",
    no_match: "No terminal matches the search or filter.", map: "Map of terminal locations",
    empty: "No terminals yet: an admin adds them on the Admin page or with `gridsense terminal add`.",

    // ---- terminal page (page-terminal.js) ----
    term_title: "Terminal {id}", term_since: "online since", term_last: "last data", term_fw: "firmware",
    term_ch: "channels", term_tabs: "Terminal views", term_tab_live: "Live", term_tab_trends: "Trends",
    term_tab_status: "Status", term_tab_events: "Events", term_tab_commands: "Commands",
    // (live tab: term-live.js, keys tl_)

    // ---- terminal history tabs (term-history.js, keys th_) ----

    // ---- events page (page-events.js) ----
    ev_title: "Events", ev_list_title: "Event list", ev_filters: "Filters", ev_filters_active: "Filters ({n} set)",
    ev_kind: "Kind", ev_terminal: "Terminal", ev_state: "State", ev_range: "Time",
    ev_all_kinds: "all kinds", ev_all_terminals: "all terminals", ev_all_states: "all",
    ev_kind_dip: "dip", ev_kind_swell: "swell", ev_kind_interruption: "interruption",
    ev_open: "not acknowledged", ev_acked: "acknowledged", ev_acked_by: "acknowledged by {user}",
    ev_range_all: "any time", ev_range_hour: "last hour", ev_range_day: "last 24 h",
    ev_range_week: "last 7 days", ev_range_month: "last 30 days", ev_range_custom: "from … to …",
    ev_from: "From", ev_to: "To", ev_min: "min", ev_max: "max",
    ev_depth_range: "Residual / maximum (% of reference)", ev_dur_range: "Duration (s)",
    ev_clear: "Clear filters", ev_load_more: "Load older events", ev_retry: "Try again",
    ev_count: "{n} events loaded.", ev_count_more: "Older events exist: load more below.",
    ev_count_of: "{n} of {total} loaded events match the depth and duration filters (applied in the browser to the loaded events).",
    ev_col_start: "Start", ev_col_terminal: "Terminal", ev_col_kind: "Kind", ev_col_duration: "Duration",
    ev_col_depth: "Residual / max", ev_col_value: "Voltage (secondary)", ev_col_channels: "Channels (worst)",
    ev_col_state: "Acknowledged",
    ev_ack: "Acknowledge", ev_ack_label: "Acknowledge event {id}", ev_ack_done: "Event {id} acknowledged.",
    ev_ack_conflict: "Not acknowledged: {msg}", ev_ack_failed: "Event {id} could not be acknowledged: {msg}",
    ev_open_label: "Open event {id}: {kind} on {terminal}", ev_storing: "just detected: being stored…",
    ev_empty: "No events in this range: widen the time range or clear filters.",
    ev_empty_none: "No voltage events recorded yet. They appear here live as soon as a terminal detects a dip, swell or interruption.",
    ev_empty_client: "None of the loaded events matches the depth and duration filters: widen them, clear filters or load older events.",
    ev_scatter_title: "Dips and swells against the ITIC (CBEMA) and SEMI F47 curves",
    ev_axis_duration: "Duration (s, logarithmic)", ev_axis_magnitude: "Residual / maximum voltage (% of reference)",
    ev_axis_magnitude_short: "Voltage (% of reference)",
    ev_point: "{kind} on {terminal}: {dur} at {pct}",
    ev_legend_itic: "ITIC (CBEMA): no-interruption region", ev_legend_semi: "SEMI F47: required ride-through (50 ms – 1 s)",
    ev_itic_outside: "{n} of {total} events lie outside the ITIC envelope. Click a point to open its event.",
    ev_back: "← All events", ev_bad_id: "“{id}” is not an event number.",
    ev_event_title: "Event {id}", ev_event_head: "Event {id}: {kind} on {terminal}",
    ev_details: "Details", ev_start: "Start", ev_duration: "Duration", ev_cut_short: "(cut short by a gap or a shutdown)",
    ev_residual: "Residual voltage", ev_maximum: "Maximum voltage", ev_secondary_note: "secondary",
    ev_reference: "Reference", ev_ref_declared: "declared", ev_ref_sliding: "sliding",
    ev_channels: "Channels", ev_worst: "Worst channel", ev_itic: "ITIC curve",
    ev_itic_inside: "inside the envelope", ev_itic_out: "outside the envelope",
    ev_waveform: "Waveform and RMS(1/2)", ev_side: "Units", ev_primary: "primary", ev_secondary: "secondary",
    ev_pre: "Before", ev_post: "After", ev_reset_zoom: "Reset zoom",
    ev_wave_loading: "Loading the stored waveform…",
    ev_wave_none: "No stored waveform around this event: the terminal's blocks for this time were not recorded or have been removed.",
    ev_wave_truncated: "The window was cut at 600 s.", ev_wave_gaps: "{n} gaps in the stored data ({ms} ms in all) are left blank.",
    ev_wave_envelope: "Long window: drawn as a min/max envelope of {n} buckets.",
    ev_rms_min: "Lowest RMS(1/2) on {ch}: {v} =", ev_rms_max: "Highest RMS(1/2) on {ch}: {v} =",
    ev_of_reference: "of the reference ({v}).",
    ev_chart_voltage: "Voltages (V, {side})", ev_chart_current: "Currents (A, {side})",
    ev_chart_rms: "RMS(1/2) of the voltages (V, {side}); reference solid, 90 % and 110 % dashed; the event shaded",
    ev_axis_time: "Time from the event start (ms)", ev_time_ms: "Time", ev_axis_volt: "Voltage (V)",
    ev_axis_amp: "Current (A)", ev_axis_rms: "RMS(1/2) (V)",
    ev_zoom_hint: "Drag across a chart (or pinch on a touch screen) to zoom the time axis; all charts follow.",
    ev_no_uplot: "The chart library did not load: reload the page.",

    // ---- phase page (page-phase.js) ----

    // ---- admin pages (page-admin.js) ----

    // ---- map (map.js) ----

    // ---- end of en ----
  },
  zh: {
    // ---- shell and login (app.js, lib.js) ----
    login_title: "登录", user: "用户名", password: "密码", login: "登录",
    logout: "退出", bad_login: "用户名或密码错误。",
    too_many: "登录失败次数过多，请在 {s} 秒后重试。", unreachable: "无法连接服务器。",
    session_ended: "会话已结束，请重新登录。",
    http_error: "服务器返回 {status}。", page_failed: "页面出错：{msg}",
    not_found: "页面不存在", forbidden: "此页面仅供管理员使用。",
    skip: "跳到正文", loading: "加载中…", none: "—",
    role_viewer: "查看者", role_operator: "操作员", role_admin: "管理员",
    nav_fleet: "终端总览", nav_events: "事件", nav_phase: "相角", nav_admin: "管理",
    live: "实时", reconnecting: "正在重连…", offline_app: "离线：显示最后已知状态",
    ago_s: "{n} 秒前", ago_min: "{n} 分钟前", ago_h: "{n} 小时前", ago_d: "{n} 天前",
    todo_page: "此页面尚未完成。",

    // ---- fleet page (page-fleet.js) ----
    fleet: "终端总览", online: "在线", offline: "离线", with_events: "有未确认事件",
    id: "终端", name: "名称", state: "状态", last_seen: "最近数据", rsrp: "信号",
    supply: "供电", temperature: "温度", time_q: "时间", buffered: "缓存块",
    analysis: "分析", behind: "滞后", ok: "正常", events_open: "未确认事件",
    analysis_delay: "结果比采样晚 {s} 秒",
    tq_none: "未知", tq_gps: "GPS 锁定", tq_net: "网络同步", tq_free: "自由运行",
    sats: "{n} 颗卫星", search: "搜索", search_hint: "编号或名称", show: "显示",
    filter_all: "全部", filter_online: "在线", filter_offline: "离线", filter_events: "有未确认事件",
    no_match: "没有符合搜索或筛选条件的终端。", map: "终端位置地图",
    empty: "还没有终端：管理员可在“管理”页面或用 `gridsense terminal add` 添加。",

    // ---- terminal page (page-terminal.js) ----
    term_title: "终端 {id}", term_since: "在线自", term_last: "最近数据", term_fw: "固件",
    term_ch: "通道", term_tabs: "终端视图", term_tab_live: "实时", term_tab_trends: "趋势",
    term_tab_status: "状态", term_tab_events: "事件", term_tab_commands: "命令",
    // (live tab: term-live.js, keys tl_)

    // ---- terminal history tabs (term-history.js, keys th_) ----

    // ---- events page (page-events.js) ----
    ev_title: "事件", ev_list_title: "事件列表", ev_filters: "筛选", ev_filters_active: "筛选（已设 {n} 项）",
    ev_kind: "类型", ev_terminal: "终端", ev_state: "状态", ev_range: "时间",
    ev_all_kinds: "全部类型", ev_all_terminals: "全部终端", ev_all_states: "全部",
    ev_kind_dip: "电压暂降", ev_kind_swell: "电压暂升", ev_kind_interruption: "短时中断",
    ev_open: "未确认", ev_acked: "已确认", ev_acked_by: "由 {user} 确认",
    ev_range_all: "全部时间", ev_range_hour: "最近 1 小时", ev_range_day: "最近 24 小时",
    ev_range_week: "最近 7 天", ev_range_month: "最近 30 天", ev_range_custom: "自定义起止",
    ev_from: "起", ev_to: "止", ev_min: "最小", ev_max: "最大",
    ev_depth_range: "残余/最大电压（参考值的 %）", ev_dur_range: "持续时间（秒）",
    ev_clear: "清除筛选", ev_load_more: "加载更早的事件", ev_retry: "重试",
    ev_count: "已加载 {n} 个事件。", ev_count_more: "还有更早的事件：可在下方继续加载。",
    ev_count_of: "已加载的 {total} 个事件中有 {n} 个符合深度和持续时间筛选（在浏览器中对已加载事件筛选）。",
    ev_col_start: "开始", ev_col_terminal: "终端", ev_col_kind: "类型", ev_col_duration: "持续时间",
    ev_col_depth: "残余/最大", ev_col_value: "电压（二次侧）", ev_col_channels: "通道（最严重）",
    ev_col_state: "确认",
    ev_ack: "确认", ev_ack_label: "确认事件 {id}", ev_ack_done: "事件 {id} 已确认。",
    ev_ack_conflict: "未能确认：{msg}", ev_ack_failed: "事件 {id} 确认失败：{msg}",
    ev_open_label: "打开事件 {id}：{terminal} 的{kind}", ev_storing: "刚检测到：正在存储…",
    ev_empty: "此范围内没有事件：请放宽时间范围或清除筛选。",
    ev_empty_none: "尚未记录电压事件。终端一旦检测到暂降、暂升或中断，事件会实时显示在这里。",
    ev_empty_client: "已加载的事件都不符合深度和持续时间筛选：请放宽筛选、清除筛选或加载更早的事件。",
    ev_scatter_title: "电压暂降与暂升对照 ITIC (CBEMA) 和 SEMI F47 曲线",
    ev_axis_duration: "持续时间（秒，对数坐标）", ev_axis_magnitude: "残余/最大电压（参考值的 %）",
    ev_axis_magnitude_short: "电压（参考值的 %）",
    ev_point: "{terminal} 的{kind}：{dur}，{pct}",
    ev_legend_itic: "ITIC (CBEMA)：不中断运行区", ev_legend_semi: "SEMI F47：要求耐受区（50 毫秒 – 1 秒）",
    ev_itic_outside: "{total} 个事件中有 {n} 个落在 ITIC 包络之外。点击数据点可打开对应事件。",
    ev_back: "← 全部事件", ev_bad_id: "“{id}” 不是事件编号。",
    ev_event_title: "事件 {id}", ev_event_head: "事件 {id}：{terminal} 的{kind}",
    ev_details: "详情", ev_start: "开始", ev_duration: "持续时间", ev_cut_short: "（因数据缺口或停机提前结束）",
    ev_residual: "残余电压", ev_maximum: "最大电压", ev_secondary_note: "二次侧",
    ev_reference: "参考电压", ev_ref_declared: "标称", ev_ref_sliding: "滑动",
    ev_channels: "通道", ev_worst: "最严重通道", ev_itic: "ITIC 曲线",
    ev_itic_inside: "在包络之内", ev_itic_out: "在包络之外",
    ev_waveform: "波形与 RMS(1/2)", ev_side: "单位", ev_primary: "一次侧", ev_secondary: "二次侧",
    ev_pre: "事件前", ev_post: "事件后", ev_reset_zoom: "重置缩放",
    ev_wave_loading: "正在加载存储的波形…",
    ev_wave_none: "此事件前后没有存储的波形：终端在此时段的数据块未被记录或已被删除。",
    ev_wave_truncated: "时间窗在 600 秒处截断。", ev_wave_gaps: "存储数据中有 {n} 处缺口（共 {ms} 毫秒），留空显示。",
    ev_wave_envelope: "时间窗较长：以 {n} 个区间的最小/最大包络显示。",
    ev_rms_min: "{ch} 的最低 RMS(1/2)：{v} =", ev_rms_max: "{ch} 的最高 RMS(1/2)：{v} =",
    ev_of_reference: "参考电压（{v}）的比例。",
    ev_chart_voltage: "电压（V，{side}）", ev_chart_current: "电流（A，{side}）",
    ev_chart_rms: "电压 RMS(1/2)（V，{side}）；实线为参考值，虚线为 90 % 和 110 %；阴影为事件区间",
    ev_axis_time: "相对事件开始的时间（毫秒）", ev_time_ms: "时间", ev_axis_volt: "电压 (V)",
    ev_axis_amp: "电流 (A)", ev_axis_rms: "RMS(1/2) (V)",
    ev_zoom_hint: "在图上拖动（触屏上双指缩放）可缩放时间轴；所有图表同步。",
    ev_no_uplot: "图表库未能加载：请刷新页面。",

    // ---- phase page (page-phase.js) ----

    // ---- admin pages (page-admin.js) ----

    // ---- map (map.js) ----

    // ---- end of zh ----
  },
};

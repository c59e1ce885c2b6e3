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

    // ---- phase page (page-phase.js) ----
    ph_title: "Wide-area phase view",
    ph_why: "Every terminal timestamps its samples against UTC (GPS or network time) and reports its phasors on the same UTC grid, so two reports with the same report time were measured at the same instant: their angle difference is the real phase difference between the two sites.",
    ph_ref: "Reference", ph_qty: "Angle of", ph_qty_pos: "V1 (positive-sequence voltage)", ph_qty_phase: "{ch} (phase voltage)",
    ph_window: "Window", ph_win_min: "last {n} min", ph_pause: "Pause chart", ph_resume: "Resume chart",
    ph_live_view: "Show the whole window", ph_zoom_hint: "Drag across the chart (or pinch with two fingers) to zoom into a time range; double-click or the button shows the whole window again.",
    ph_chart_title: "Angle difference over time", ph_table_title: "Latest difference per terminal",
    ph_map_title: "Snapshot on the map", ph_map_hint: "Colour: the latest Δθ against the reference (blue behind, red ahead). Select a terminal on the map to make it the reference.",
    ph_what: "Δθ = θ(terminal) − θ({ref}) of {qty} in degrees, wrapped to (−180°, 180°], between reports with the same report time.",
    ph_no_terminals: "No terminals yet: an admin adds them on the Admin page or with `gridsense terminal add`.",
    ph_ref_unknown: "There is no terminal {id}; another one is used as the reference.",
    ph_ref_no_data: "No phasor reports from the reference {id} in this window: is it online, and is `[analysis] phasor_rate` above 0? Choose another reference.",
    ph_no_others: "No other terminal has reports at the reference's report times yet: the view needs at least two online terminals.",
    ph_loading_history: "Loading the last minutes of phasor reports…",
    ph_unsync_note: "Not synchronised to UTC (reports flagged time_unsync): {ids}. Their angle differences are not meaningful until their clocks lock.",
    ph_time: "Time", ph_axis: "Δθ (°)",
    ph_col_terminal: "Terminal", ph_col_delta: "Δθ", ph_col_time: "Report time", ph_col_freq: "Frequency",
    ph_col_rocof: "ROCOF", ph_col_sync: "UTC sync", ph_col_state: "State",
    ph_unsync: "⚠ not synchronised", ph_synced: "synchronised", ph_is_ref: "reference",
    ph_table_caption: "Against the reference {ref} at the newest report time both have.",
    ph_map_ref: "{id}: reference", ph_map_delta: "{id}: Δθ {d}", ph_map_nodata: "{id}: no reports",
    ph_ref_short: "ref", ph_scale: "Colour scale: −{max}° (blue) … 0° (grey) … +{max}° (red).",

    // ---- admin pages (page-admin.js) ----

    // ---- map (map.js) ----
    map_label: "Map of terminal locations", map_no_leaflet: "The map cannot be shown (Leaflet did not load).",
    map_no_tiles: "no tiles: latitude/longitude grid", map_zoom_in: "Zoom in", map_zoom_out: "Zoom out",
    map_none_placed: "No terminal has a location yet: an admin sets it on the Admin page or with `gridsense terminal add ID --location LAT,LON`.",
    map_no_terminals: "No terminals to show.",
    map_state_online: "online", map_state_events: "with open events", map_state_offline: "offline",
    map_unplaced: "Not placed (no location) ({n}):", map_more: "and {n} more",

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

    // ---- phase page (page-phase.js) ----
    ph_title: "广域相角视图",
    ph_why: "每个终端都按 UTC（GPS 或网络授时）给采样打时标，并在同一 UTC 时间网格上上报相量，因此上报时刻相同的两份报告是在同一瞬间测得的：它们的相角差就是两地之间真实的相位差。",
    ph_ref: "参考终端", ph_qty: "相角", ph_qty_pos: "V1（正序电压）", ph_qty_phase: "{ch}（相电压）",
    ph_window: "时间窗", ph_win_min: "最近 {n} 分钟", ph_pause: "暂停图表", ph_resume: "继续图表",
    ph_live_view: "显示整个时间窗", ph_zoom_hint: "在图上拖动（或用两指捏合）可放大某段时间；双击或按按钮可重新显示整个时间窗。",
    ph_chart_title: "相角差随时间变化", ph_table_title: "各终端最新相角差",
    ph_map_title: "地图快照", ph_map_hint: "颜色：相对参考终端的最新 Δθ（蓝色滞后，红色超前）。在地图上选择终端可将其设为参考。",
    ph_what: "Δθ = θ(终端) − θ({ref})，量为 {qty}，单位度，折算到 (−180°, 180°]，按上报时刻对齐。",
    ph_no_terminals: "还没有终端：管理员可在“管理”页面或用 `gridsense terminal add` 添加。",
    ph_ref_unknown: "不存在终端 {id}，已改用另一个终端作为参考。",
    ph_ref_no_data: "参考终端 {id} 在此时间窗内没有相量报告：它在线吗？`[analysis] phasor_rate` 是否大于 0？请选择其他参考终端。",
    ph_no_others: "还没有其他终端在参考终端的上报时刻有报告：此视图至少需要两个在线终端。",
    ph_loading_history: "正在加载最近几分钟的相量报告…",
    ph_unsync_note: "未与 UTC 同步（报告带 time_unsync 标志）：{ids}。在其时钟锁定之前，它们的相角差没有意义。",
    ph_time: "时间", ph_axis: "Δθ（°）",
    ph_col_terminal: "终端", ph_col_delta: "Δθ", ph_col_time: "上报时刻", ph_col_freq: "频率",
    ph_col_rocof: "频率变化率", ph_col_sync: "UTC 同步", ph_col_state: "状态",
    ph_unsync: "⚠ 未同步", ph_synced: "已同步", ph_is_ref: "参考",
    ph_table_caption: "相对参考终端 {ref}，取两者共有的最新上报时刻。",
    ph_map_ref: "{id}：参考", ph_map_delta: "{id}：Δθ {d}", ph_map_nodata: "{id}：无报告",
    ph_ref_short: "参考", ph_scale: "颜色刻度：−{max}°（蓝）… 0°（灰）… +{max}°（红）。",

    // ---- admin pages (page-admin.js) ----

    // ---- map (map.js) ----
    map_label: "终端位置地图", map_no_leaflet: "无法显示地图（Leaflet 未加载）。",
    map_no_tiles: "无地图瓦片：经纬网格", map_zoom_in: "放大", map_zoom_out: "缩小",
    map_none_placed: "还没有终端设置位置：管理员可在“管理”页面或用 `gridsense terminal add ID --location 纬度,经度` 设置。",
    map_no_terminals: "没有可显示的终端。",
    map_state_online: "在线", map_state_events: "有未确认事件", map_state_offline: "离线",
    map_unplaced: "未定位（无位置）（{n}）：", map_more: "另有 {n} 个",

    // ---- end of zh ----
  },
};

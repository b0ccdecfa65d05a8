/** @odoo-module **/
import { registry } from "@web/core/registry";

// A salesperson sees a customer's segment and repeat-purchase propensity on the contact
// cards, opens a customer to read why, then groups the contacts by segment.
registry.category("web_tour.tours").add("crm_ai_customer_tour", {
    url: "/odoo/contacts",
    steps: () => [
        {
            content: "The contact card shows the customer's segment",
            trigger: ".o_kanban_record:contains('crm_ai customer 0') .o_field_widget[name='ai_segment_id']",
        },
        {
            content: "Open the customer",
            trigger: ".o_kanban_record:contains('crm_ai customer 0')",
            run: "click",
        },
        {
            content: "The form shows the segment next to the tags",
            trigger: ".o_form_view .o_field_widget[name='ai_segment_id'] .badge",
        },
        {
            content: "Open the AI Insights tab",
            trigger: ".o_notebook .nav-link:contains('AI Insights')",
            run: "click",
        },
        {
            content: "The repeat-purchase reasons are in words",
            trigger: ".o_field_widget[name='ai_propensity_reasons_html'] li:contains('Orders')",
        },
        {
            // he reads his own orders only: figures made of every order are not his to see
            content: "No revenue, order count or figure in the reasons for a salesperson with own documents",
            trigger: ".o_form_view:not(:has(.o_field_widget[name='ai_rfm_frequency'])):not(:has(.o_field_widget[name='ai_propensity_reasons_html'] li:contains(':')))",
        },
        {
            content: "The segment history says when it was placed",
            trigger: ".o_field_widget[name='ai_segment_history_ids'] .o_data_row",
        },
        {
            content: "Back to the contacts",
            trigger: ".o_breadcrumb .o_back_button a, .o_breadcrumb li.breadcrumb-item a",
            run: "click",
        },
        {
            content: "Open the search options",
            trigger: ".o_searchview_dropdown_toggler",
            run: "click",
        },
        {
            content: "Group by customer segment",
            trigger: ".o_group_by_menu .o_menu_item:contains('Customer Segment')",
            run: "click",
        },
        {
            content: "The contacts are grouped by segment",
            trigger: ".o_searchview_facet:contains('Customer Segment')",
        },
        {
            content: "A segment column is there",
            trigger: ".o_kanban_group .o_column_title:contains('No purchase yet'), .o_kanban_group:contains('No purchase yet')",
        },
        {
            content: "Remove the grouping",
            trigger: ".o_searchview_facet:contains('Customer Segment') .o_facet_remove",
            run: "click",
        },
        {
            content: "Search the tour's contacts",
            trigger: ".o_searchview_input",
            run: "edit crm_ai && press Enter",
        },
        {
            content: "Switch to the list",
            trigger: ".o_switch_view.o_list",
            run: "click",
        },
        {
            content: "A customer shows its chance to buy again",
            trigger: ".o_data_row:contains('crm_ai customer 0') td[name='ai_propensity'] .o_progressbar",
        },
        {
            content: "A prospect who never bought shows no made-up 0 %",
            trigger: ".o_data_row:contains('crm_ai tour prospect') td[name='ai_propensity']:not(:has(.o_progressbar))",
        },
    ],
});

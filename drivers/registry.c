/* The table of drivers: name → ops. A new cloud adds one line here and one
 * file (CONTRIBUTING: "a cloud driver"). */
#include <string.h>

#include "drv_int.h"

extern const struct drv_ops drv_aws_ops, drv_azure_ops, drv_gcp_ops, drv_alibaba_ops,
    drv_tencent_ops, drv_openstack_ops, drv_ncp_ops, drv_cbspider_ops;

const struct drv_ops *const drv_all[] = {
    &drv_aws_ops,     &drv_azure_ops,    &drv_gcp_ops,
    &drv_alibaba_ops, &drv_tencent_ops,  &drv_openstack_ops,
    &drv_ncp_ops,     &drv_cbspider_ops, NULL,
};

const struct drv_ops *drv_lookup(const char *name)
{
    for (size_t i = 0; name && drv_all[i]; i++)
        if (strcmp(drv_all[i]->name, name) == 0) return drv_all[i];
    return NULL;
}
